from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from tickets import selectors
from tickets.api.serializers import TeamBriefSerializer, UserBriefSerializer
from tickets.models import Team


class TeamSerializer(TeamBriefSerializer):
    members = UserBriefSerializer(many=True)

    class Meta(TeamBriefSerializer.Meta):
        model = Team
        fields = [*TeamBriefSerializer.Meta.fields, "members"]


class TeamListApi(generics.ListAPIView):
    serializer_class = TeamSerializer
    pagination_class = None
    filter_backends = []

    def get_queryset(self):
        return selectors.teams_for_agent(self.request.user)


class MeSerializer(UserBriefSerializer):
    teams = TeamBriefSerializer(many=True)
    email = serializers.EmailField()

    class Meta(UserBriefSerializer.Meta):
        fields = [*UserBriefSerializer.Meta.fields, "email", "locale", "timezone", "teams"]


class MeApi(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)
